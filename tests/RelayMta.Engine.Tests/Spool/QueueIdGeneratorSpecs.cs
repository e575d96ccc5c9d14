using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Spooling;

public sealed class QueueIdGeneratorSpecs
{
    private static readonly long Epoch = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();

    /// <summary>The id the generator would make for <paramref name="at"/> and counter <paramref name="sequence"/>.</summary>
    private static QueueId IdFor(DateTimeOffset at, int sequence)
    {
        var value = (at.ToUnixTimeMilliseconds() - Epoch) << 16 | (uint)sequence;
        var chars = new char[QueueIdGenerator.Length];
        for (var i = chars.Length - 1; i >= 0; i--)
        {
            chars[i] = QueueIdGenerator.Alphabet[(int)(value & 31)];
            value >>= 5;
        }
        return new QueueId(new string(chars));
    }

    private static void AssertSortsAfter(QueueId earlier, QueueId later) =>
        Assert.True(string.CompareOrdinal(later.Value, earlier.Value) > 0, $"{later} should sort after {earlier}");

    [Fact]
    public void A_hundred_thousand_ids_are_unique_well_formed_and_strictly_increasing()
    {
        var generator = new QueueIdGenerator();
        var previous = generator.Next();
        var seen = new HashSet<string> { previous.Value };

        for (var i = 1; i < 100_000; i++)
        {
            var id = generator.Next();
            if (string.CompareOrdinal(id.Value, previous.Value) <= 0) Assert.Fail($"id {i} {id} does not sort after {previous}");
            Assert.True(seen.Add(id.Value));
            previous = id;
        }

        Assert.Equal(100_000, seen.Count);
        Assert.All(seen, s => Assert.True(QueueId.IsWellFormed(s), s));
    }

    [Fact]
    public void Ids_from_concurrent_callers_are_unique()
    {
        var generator = new QueueIdGenerator();
        var ids = new System.Collections.Concurrent.ConcurrentBag<string>();

        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 10_000; i++) ids.Add(generator.Next().Value);
        });

        Assert.Equal(80_000, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void An_id_is_encoded_from_the_time_it_was_made()
    {
        var before = IdFor(DateTimeOffset.UtcNow, 0);
        var id = new QueueIdGenerator().Next();
        var after = IdFor(DateTimeOffset.UtcNow.AddMilliseconds(1), 0);

        Assert.True(string.CompareOrdinal(id.Value, before.Value) >= 0, $"{id} before {before}");
        AssertSortsAfter(id, after);
    }

    [Fact]
    public void After_observing_an_id_from_a_later_millisecond_new_ids_sort_after_it()
    {
        var generator = new QueueIdGenerator();
        var observed = IdFor(DateTimeOffset.UtcNow.AddDays(1), 7);

        generator.Observe(observed);

        AssertSortsAfter(observed, generator.Next());
    }

    [Fact]
    public void After_observing_an_id_with_a_higher_counter_in_the_same_millisecond_new_ids_sort_after_it()
    {
        var generator = new QueueIdGenerator();
        var at = DateTimeOffset.UtcNow.AddDays(1);
        generator.Observe(IdFor(at, 7));
        var observed = IdFor(at, 500);

        generator.Observe(observed);

        AssertSortsAfter(observed, generator.Next());
    }

    [Fact]
    public void Observing_an_older_id_does_not_move_the_generator_back()
    {
        var generator = new QueueIdGenerator();
        var last = generator.Next();

        generator.Observe(IdFor(DateTimeOffset.UtcNow.AddDays(-1), 3));
        generator.Observe(new QueueId("not an id"));

        AssertSortsAfter(last, generator.Next());
    }

    [Fact]
    public void A_counter_overflow_borrows_the_next_millisecond_rather_than_repeating()
    {
        var generator = new QueueIdGenerator();
        var at = DateTimeOffset.UtcNow.AddDays(1);
        var observed = IdFor(at, 0xffff);
        generator.Observe(observed);

        var next = generator.Next();

        Assert.Equal(IdFor(at.AddMilliseconds(1), 0), next);
    }

    [Theory]
    [InlineData("0000000000000", true)]
    [InlineData("ZZZZZZZZZZZZZ", true)]
    [InlineData("0123456789ABC", true)]
    [InlineData("DEFGHJKMNPQRS", true)]
    [InlineData("TVWXYZ0123456", true)]
    [InlineData("", false)]
    [InlineData("000000000000", false)] // 12
    [InlineData("00000000000000", false)] // 14
    [InlineData("000000000000a", false)] // lower case
    [InlineData("000000000000I", false)] // not in Crockford base32
    [InlineData("000000000000L", false)]
    [InlineData("000000000000O", false)]
    [InlineData("000000000000U", false)]
    [InlineData("../../etc/pas", false)]
    [InlineData("00000000000/0", false)]
    [InlineData("000000000000\0", false)]
    public void Only_thirteen_crockford_base32_characters_are_a_well_formed_id(string text, bool wellFormed)
    {
        Assert.Equal(wellFormed, QueueId.IsWellFormed(text));
    }
}
