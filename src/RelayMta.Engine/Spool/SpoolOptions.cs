namespace RelayMta.Engine.Spool;

/// <summary>Tuning of the spool's journal (not operator settings: the defaults suit every size of host).</summary>
public sealed record SpoolOptions
{
    /// <summary>Bodies up to this size go into the journal; larger ones get a file of their own.</summary>
    public int InlineBodyLimit { get; init; } = 1024 * 1024;

    /// <summary>A journal segment is sealed and a new one started past this size.</summary>
    public long SegmentSize { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// Messages still alive in a sealed segment this long after it was sealed are moved out (body to
    /// its own file, state re-written), so a few deferred messages never pin old segments.
    /// </summary>
    public TimeSpan RelocateAfter { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the committer looks for segments to free when idle.</summary>
    public TimeSpan MaintenanceInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most bytes one group commit writes before it syncs.</summary>
    public int MaxBatchBytes { get; init; } = 16 * 1024 * 1024;
}
