using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Numerics;
using System.Text;

namespace RelayMta.Engine.Spool;

/// <summary>Kinds of journal record.</summary>
internal enum RecordType : byte
{
    /// <summary>A new (or relocated) message: envelope, state, and its body inline or by file name.</summary>
    Message = 1,
    /// <summary>A message's new state (per-recipient results, schedule).</summary>
    State = 2,
    /// <summary>Every recipient is final: the message is gone.</summary>
    Done = 3,
}

/// <summary>
/// The journal's record framing and payloads. A record is
/// <c>u32 length | u32 crc32c | u8 type | payload</c> with length and CRC over type+payload, so a
/// torn write at the tail of a segment is recognised and cut off at recovery.
/// </summary>
internal static class JournalCodec
{
    public const int FrameHeader = 8; // length + crc
    public const int MaxRecord = 1 << 30;
    private const byte Version = 1;

    public static void WriteMessageHead(ArrayBufferWriter<byte> w, MailEnvelope envelope, MessageState state, string? externalBody, long bodyLength)
    {
        var b = new Writer(w);
        b.Byte(Version);
        WriteEnvelope(ref b, envelope);
        WriteState(ref b, state);
        if (externalBody is null)
        {
            b.Byte(0);
            b.Long(bodyLength); // the body bytes follow this head in the same record
        }
        else
        {
            b.Byte(1);
            b.String(externalBody);
            b.Long(bodyLength);
        }
    }

    public static void WriteStatePayload(ArrayBufferWriter<byte> w, MessageState state)
    {
        var b = new Writer(w);
        b.Byte(Version);
        WriteState(ref b, state);
    }

    public static void WriteDonePayload(ArrayBufferWriter<byte> w, QueueId id)
    {
        var b = new Writer(w);
        b.Byte(Version);
        b.String(id.Value);
    }

    /// <summary>CRC-32C starts from all ones and the stored value is inverted, so zeros never check out.</summary>
    public const uint CrcSeed = 0xFFFFFFFF;

    /// <summary>
    /// Records are checksummed with a seed that includes their segment's id, so the bytes left in a
    /// recycled (or zero-filled) segment file can never pass for records of the segment it now is.
    /// </summary>
    public static uint SeedFor(long segmentId) => CrcSeed ^ (uint)(segmentId * 2654435761L);

    public static uint Crc(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var x in data) crc = BitOperations.Crc32C(crc, x);
        return crc;
    }

    /// <summary>A decoded Message record head; the inline body (if any) starts at <see cref="HeadLength"/> of the payload.</summary>
    public sealed record MessageHead(MailEnvelope Envelope, MessageState State, string? ExternalBody, long BodyLength, int HeadLength);

    public static MessageHead ReadMessageHead(ReadOnlySpan<byte> payload)
    {
        var r = new Reader(payload);
        CheckVersion(r.Byte());
        var envelope = ReadEnvelope(ref r);
        var state = ReadState(ref r, envelope.Id);
        var kind = r.Byte();
        string? external = kind == 1 ? r.String() : null;
        var length = r.Long();
        return new MessageHead(envelope, state, external, length, r.Position);
    }

    public static MessageState ReadStatePayload(ReadOnlySpan<byte> payload)
    {
        var r = new Reader(payload);
        CheckVersion(r.Byte());
        return ReadState(ref r, null);
    }

    public static QueueId ReadDonePayload(ReadOnlySpan<byte> payload)
    {
        var r = new Reader(payload);
        CheckVersion(r.Byte());
        return new QueueId(r.String());
    }

    private static void CheckVersion(byte v)
    {
        if (v != Version) throw new InvalidDataException($"journal record version {v} is not known");
    }

    private static void WriteEnvelope(ref Writer b, MailEnvelope e)
    {
        b.String(e.Id.Value);
        b.Long(e.ReceivedAt.ToUnixTimeMilliseconds());
        b.String(e.Sender);
        b.Int(e.Recipients.Length);
        foreach (var r in e.Recipients) b.String(r);
        b.String(e.ClientAddress);
        b.String(e.HeloName);
        b.String(e.Protocol);
        b.NullableString(e.AuthUser);
        b.Int((int)e.Flags);
        b.Long(e.BodyLength);
    }

    private static MailEnvelope ReadEnvelope(ref Reader r)
    {
        var id = new QueueId(r.String());
        var received = DateTimeOffset.FromUnixTimeMilliseconds(r.Long());
        var sender = r.String();
        var count = r.Int();
        if (count is < 0 or > 1_000_000) throw new InvalidDataException("bad recipient count");
        var recipients = ImmutableArray.CreateBuilder<string>(count);
        for (var i = 0; i < count; i++) recipients.Add(r.String());
        return new MailEnvelope(id, received, sender, recipients.MoveToImmutable(), r.String(), r.String(), r.String(),
            r.NullableString(), (MessageFlags)r.Int(), r.Long());
    }

    private static void WriteState(ref Writer b, MessageState s)
    {
        b.String(s.Id.Value);
        b.Int(s.Attempts);
        b.Long(s.NextAttemptAt?.ToUnixTimeMilliseconds() ?? long.MinValue);
        b.Byte(s.Held ? (byte)1 : (byte)0);
        b.Int(s.Recipients.Length);
        foreach (var rs in s.Recipients)
        {
            b.Byte((byte)rs.State);
            b.NullableString(rs.Status);
            b.NullableString(rs.Diagnostic);
            b.NullableString(rs.RemoteMta);
            b.Long(rs.At?.ToUnixTimeMilliseconds() ?? long.MinValue);
        }
    }

    private static MessageState ReadState(ref Reader r, QueueId? expected)
    {
        var id = new QueueId(r.String());
        if (expected is { } e && e != id) throw new InvalidDataException("state id does not match the envelope");
        var attempts = r.Int();
        var next = r.Long();
        var held = r.Byte() != 0;
        var count = r.Int();
        if (count is < 0 or > 1_000_000) throw new InvalidDataException("bad recipient count");
        var list = ImmutableArray.CreateBuilder<RecipientStatus>(count);
        for (var i = 0; i < count; i++)
        {
            var state = (RecipientState)r.Byte();
            var status = r.NullableString();
            var diagnostic = r.NullableString();
            var remote = r.NullableString();
            var at = r.Long();
            list.Add(state == RecipientState.Pending && status is null && diagnostic is null && remote is null && at == long.MinValue
                ? RecipientStatus.Fresh
                : new RecipientStatus(state, status, diagnostic, remote, at == long.MinValue ? null : DateTimeOffset.FromUnixTimeMilliseconds(at)));
        }
        return new MessageState(id, list.MoveToImmutable(), attempts,
            next == long.MinValue ? null : DateTimeOffset.FromUnixTimeMilliseconds(next), held);
    }

    private ref struct Writer(ArrayBufferWriter<byte> w)
    {
        public void Byte(byte v)
        {
            w.GetSpan(1)[0] = v;
            w.Advance(1);
        }

        public void Int(int v)
        {
            BinaryPrimitives.WriteInt32LittleEndian(w.GetSpan(4), v);
            w.Advance(4);
        }

        public void Long(long v)
        {
            BinaryPrimitives.WriteInt64LittleEndian(w.GetSpan(8), v);
            w.Advance(8);
        }

        public void String(string v)
        {
            var n = Encoding.UTF8.GetByteCount(v);
            Int(n);
            Encoding.UTF8.GetBytes(v, w.GetSpan(n));
            w.Advance(n);
        }

        public void NullableString(string? v)
        {
            if (v is null)
            {
                Int(-1);
                return;
            }
            String(v);
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        public int Position { get; private set; }

        public byte Byte() => _data[Position++];

        public int Int()
        {
            var v = BinaryPrimitives.ReadInt32LittleEndian(_data[Position..]);
            Position += 4;
            return v;
        }

        public long Long()
        {
            var v = BinaryPrimitives.ReadInt64LittleEndian(_data[Position..]);
            Position += 8;
            return v;
        }

        public string String()
        {
            var n = Int();
            if (n < 0 || n > _data.Length - Position) throw new InvalidDataException("bad string length");
            var s = Encoding.UTF8.GetString(_data.Slice(Position, n));
            Position += n;
            return s;
        }

        public string? NullableString()
        {
            var n = BinaryPrimitives.ReadInt32LittleEndian(_data[Position..]);
            if (n == -1)
            {
                Position += 4;
                return null;
            }
            return String();
        }
    }
}
