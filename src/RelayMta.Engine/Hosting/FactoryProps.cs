using Akka.Actor;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// Props from a plain factory delegate. <c>Props.Create(() =&gt; new X(...))</c> compiles an
/// expression tree every time it is called, which for an actor made per connection (sessions,
/// delivery agents) cost most of the CPU of a short SMTP session, plus the finalizers of the
/// dynamic methods it leaves behind. An <see cref="IIndirectActorProducer"/> just calls the delegate.
/// </summary>
internal static class FactoryProps
{
    public static Props Create<TActor>(Func<TActor> factory) where TActor : ActorBase =>
        Props.CreateBy(new Producer<TActor>(factory));

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}
