using System.Buffers;

namespace RelayMta.Protocol.Smtp;

/// <summary>
/// Prepares message content for DATA (RFC 5321 4.5.2): a '.' at the start of a line is doubled,
/// every line ends with CRLF (a stray bare CR or LF becomes CRLF, so nothing we send can be read
/// as a different end of data by the next hop), and <see cref="Complete"/> adds the final
/// CRLF "." CRLF. Streaming: call <see cref="Write"/> with chunks of any size. When no line in a
/// chunk starts with '.', and there are no bare line ends, the chunk is copied as it is.
/// </summary>
public sealed class DotStuffer
{
    private bool _atLineStart = true;
    private bool _afterCr;
    private bool _wroteAnything;

    /// <summary>Starts a new message.</summary>
    public void Reset()
    {
        _atLineStart = true;
        _afterCr = false;
        _wroteAnything = false;
    }

    /// <summary>Writes <paramref name="input"/>, stuffed, to <paramref name="output"/>.</summary>
    public void Write(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        if (input.IsEmpty) return;
        _wroteAnything = true;
        var runStart = 0;
        for (var i = 0; i < input.Length; i++)
        {
            var b = input[i];
            if (_afterCr)
            {
                _afterCr = false;
                if (b != (byte)'\n')
                {
                    // bare CR: end the line properly, then look at this byte at a line start
                    output.Write(input[runStart..i]);
                    output.Write("\n"u8);
                    runStart = i;
                    _atLineStart = true;
                }
                else
                {
                    _atLineStart = true;
                    continue;
                }
            }

            if (_atLineStart && b == (byte)'.')
            {
                output.Write(input[runStart..i]);
                output.Write("."u8); // the doubled dot; the original follows in the run
                runStart = i;
            }
            _atLineStart = false;

            if (b == (byte)'\r')
            {
                _afterCr = true;
            }
            else if (b == (byte)'\n')
            {
                // bare LF: insert the CR that belongs before it
                output.Write(input[runStart..i]);
                output.Write("\r"u8);
                runStart = i;
                _atLineStart = true;
            }
            else if (!_atLineStart)
            {
                // skip ahead to the next CR or LF: nothing in between needs attention
                var next = input[(i + 1)..].IndexOfAny((byte)'\r', (byte)'\n');
                if (next < 0)
                {
                    i = input.Length - 1;
                }
                else
                {
                    i += next;
                }
            }
        }
        output.Write(input[runStart..]);
    }

    /// <summary>Ends the content: a CRLF if the last line lacks one, then ".\r\n".</summary>
    public void Complete(IBufferWriter<byte> output)
    {
        if (_afterCr)
        {
            output.Write("\n"u8);
        }
        else if (_wroteAnything && !_atLineStart)
        {
            output.Write("\r\n"u8);
        }
        output.Write(".\r\n"u8);
        Reset();
    }
}
