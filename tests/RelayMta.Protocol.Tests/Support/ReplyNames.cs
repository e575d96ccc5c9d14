using System.Reflection;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Tests.Support;

/// <summary>Lets tables name a reply (<c>nameof(Replies.SyntaxError)</c>) and tests fetch the very instance.</summary>
internal static class ReplyNames
{
    public static SmtpReply Get(string name) =>
        (SmtpReply?)typeof(Replies).GetField(name, BindingFlags.Public | BindingFlags.Static)?.GetValue(null)
        ?? throw new ArgumentException($"Replies has no field '{name}'", nameof(name));

    public static string? NameOf(SmtpReply? reply) =>
        reply is null
            ? null
            : typeof(Replies).GetFields(BindingFlags.Public | BindingFlags.Static)
                  .FirstOrDefault(f => ReferenceEquals(f.GetValue(null), reply))?.Name
              ?? $"(not a Replies field: {reply})";
}
