# runs.csv (one line per run, written by benchmarks/compare.sh) -> summary.csv: per size, sessions
# and server the median of the runs, plus a "RelayMta/Postfix" line whose figures are the medians
# of the per-run ratios (RelayMta's run i against Postfix's run i, run back to back).
# Portable awk (Debian's default is mawk): no gawk extensions.
#
#   awk -F, -f summarize.awk runs.csv > summary.csv

function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return "NA"
    for (i = 2; i <= n; i++) {            # insertion sort, numerically
        t = a[i] + 0
        for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
    if (n % 2) return a[(n + 1) / 2] + 0
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, field, value) {
    if (value == "" || value == "NA") return
    vals[key, field] = vals[key, field] " " value
}
function fmt(v, digits) {
    if (v == "NA") return v
    return sprintf("%." digits "f", v)
}
function ratio(a, b) {
    if (a == "" || b == "" || a == "NA" || b == "NA" || b + 0 == 0) return "NA"
    return a / b
}

NR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    next
}
{
    size = $col["size_bytes"]; sess = $col["sessions"]; server = $col["server"]; run = $col["run"]
    key = size SUBSEP sess SUBSEP server
    if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
    runs[key]++
    messages[key] = $col["messages"]
    if ($col["mismatch"] != "0") mismatched[key]++
    if ($col["source_rc"] != "0") failed[key]++
    add(key, "acc", $col["accepted_per_s"])
    add(key, "e2e", $col["e2e_per_s"])
    add(key, "mem", $col["peak_mem_kib"] == "NA" ? "NA" : $col["peak_mem_kib"] / 1024)
    add(key, "pss", $col["peak_pss_kib"] == "NA" ? "NA" : $col["peak_pss_kib"] / 1024)
    add(key, "cpu", $col["cpu_seconds"])
    if ("machine_busy_pct" in col) add(key, "busy", $col["machine_busy_pct"])
    if ("others_busy_pct" in col) add(key, "oth", $col["others_busy_pct"])
    # keep the figures of each run for the ratios
    run_key = size SUBSEP sess SUBSEP run
    if (!((size SUBSEP sess) in ratio_seen)) { ratio_seen[size SUBSEP sess] = 1; setting[++nsettings] = size SUBSEP sess }
    fig[run_key, server, "acc"] = $col["accepted_per_s"]
    fig[run_key, server, "e2e"] = $col["e2e_per_s"]
    fig[run_key, server, "mem"] = $col["peak_mem_kib"]
    fig[run_key, server, "pss"] = $col["peak_pss_kib"]
    fig[run_key, server, "cpu"] = $col["cpu_seconds"]
    has[run_key, server] = 1
    if (!(run_key in run_listed)) { run_listed[run_key] = 1; run_list[size SUBSEP sess] = run_list[size SUBSEP sess] " " run }
}
END {
    print "size_bytes,sessions,server,runs,messages,accepted_per_s,e2e_per_s,peak_mem_mib,peak_pss_mib,cpu_seconds,mismatched_runs,failed_runs,machine_busy_pct,others_busy_pct"
    for (s = 1; s <= nsettings; s++) {
        split(setting[s], sp, SUBSEP)
        for (k = 1; k <= nkeys; k++) {
            split(order[k], kp, SUBSEP)
            if (kp[1] != sp[1] || kp[2] != sp[2]) continue
            key = order[k]
            printf "%s,%s,%s,%d,%s,%s,%s,%s,%s,%s,%d,%d,%s,%s\n", kp[1], kp[2], kp[3], runs[key], messages[key],
                fmt(median(vals[key, "acc"]), 1), fmt(median(vals[key, "e2e"]), 1),
                fmt(median(vals[key, "mem"]), 1), fmt(median(vals[key, "pss"]), 1),
                fmt(median(vals[key, "cpu"]), 2), mismatched[key] + 0, failed[key] + 0,
                fmt(median(vals[key, "busy"]), 0), fmt(median(vals[key, "oth"]), 0)
        }
        # RelayMta/Postfix from the same run
        n = split(run_list[setting[s]], rl, " ")
        pairs = 0
        delete rv
        for (r = 1; r <= n; r++) {
            rk = setting[s] SUBSEP rl[r]
            if (!((rk, "RelayMta") in has) || !((rk, "Postfix") in has)) continue
            pairs++
            split("acc e2e mem pss cpu", fields, " ")
            for (f = 1; f <= 5; f++) {
                v = ratio(fig[rk, "RelayMta", fields[f]], fig[rk, "Postfix", fields[f]])
                if (v != "NA") rv[fields[f]] = rv[fields[f]] " " v
            }
        }
        if (pairs > 0)
            printf "%s,%s,RelayMta/Postfix,%d,,%s,%s,%s,%s,%s,,,,\n", sp[1], sp[2], pairs,
                fmt(median(rv["acc"]), 2), fmt(median(rv["e2e"]), 2), fmt(median(rv["mem"]), 2),
                fmt(median(rv["pss"]), 2), fmt(median(rv["cpu"]), 2)
    }
}
