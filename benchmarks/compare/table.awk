# summary.csv -> the table benchmarks/compare.sh prints (fmt=text) and writes to summary.md
# (fmt=md). Portable awk (mawk).
#
#   awk -F, -v fmt=text -f table.awk summary.csv

function human(bytes) {
    if (bytes % 1048576 == 0) return (bytes / 1048576) " MiB"
    if (bytes % 1024 == 0) return (bytes / 1024) " KiB"
    return bytes " B"
}
function cell(v, is_ratio) {
    if (v == "" || v == "NA") return "-"
    return is_ratio ? sprintf("%.2fx", v) : v
}
function row(a, b, c, d, e, f, g, h, i, j, k) {
    if (fmt == "md")
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, f, g, h, i, j, k
    else
        printf "%-8s %8s  %-17s %11s %13s %9s %13s %8s %13s %5s %11s\n", a, b, c, d, e, f, g, h, i, j, k
}

NR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    row("size", "sessions", "server", "accepted/s", "end-to-end/s", "peak MiB", "peak PSS MiB", "CPU s", "busy%(others)", "runs", "mismatches")
    if (fmt == "md")
        print "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    else
        print "-------- --------  ----------------- ----------- ------------- --------- ------------- -------- ------------- ----- -----------"
    next
}
{
    setting = $col["size_bytes"] "/" $col["sessions"]
    if (fmt != "md" && prev != "" && setting != prev) print ""
    prev = setting
    r = ($col["server"] == "RelayMta/Postfix")
    mism = r ? "" : $col["mismatched_runs"] ($col["failed_runs"] > 0 ? " (" $col["failed_runs"] " failed)" : "")
    busy = ""
    if (!r && ("machine_busy_pct" in col) && $col["machine_busy_pct"] != "NA")
        busy = $col["machine_busy_pct"] " (" $col["others_busy_pct"] ")"
    row(human($col["size_bytes"]), $col["sessions"], $col["server"],
        cell($col["accepted_per_s"], r), cell($col["e2e_per_s"], r), cell($col["peak_mem_mib"], r),
        cell($col["peak_pss_mib"], r), cell($col["cpu_seconds"], r), busy, $col["runs"], mism)
}
