# Messages per second against concurrent sessions, for one message size: RelayMta and Postfix
# (accepted and end-to-end) and the smtp-sink ceiling. benchmarks/compare.sh writes the data file
# from summary.csv (columns: sessions, ceiling, RelayMta accepted, RelayMta end-to-end, Postfix
# accepted, Postfix end-to-end; "?" = missing) and runs:
#
#   gnuplot -e "datafile='chart-1024.dat'; outfile='chart-1024.png'; subtitle='1 KiB'; term='pngcairo'" chart.gp

if (!exists("term")) term = "pngcairo"
if (!exists("subtitle")) subtitle = ""
if (!exists("datafile")) datafile = "chart.dat"
if (!exists("outfile")) outfile = "chart.png"

if (term eq "pngcairo") {
    set terminal pngcairo size 1100,650 enhanced font "sans,11"
} else {
    set terminal png size 1100,650
}
set output outfile

set title "RelayMta vs Postfix on loopback (smtp-source -> server -> smtp-sink), " . subtitle
set xlabel "concurrent sessions (smtp-source -s)"
set ylabel "messages per second (median of runs)"
set logscale x
set logscale y
set format y "%.0f"
set grid xtics ytics mytics
set key outside right top vertical
set datafile missing "?"
set offsets graph 0.05, graph 0.05, 0, 0

plot datafile using 1:2:xtic(1) with linespoints lw 2 pt 7 dt 3 lc rgb "#888888" title "smtp-sink alone (ceiling)", \
     datafile using 1:3 with linespoints lw 2 pt 5 lc rgb "#1f77b4" title "RelayMta accepted", \
     datafile using 1:4 with linespoints lw 2 pt 4 dt 2 lc rgb "#1f77b4" title "RelayMta end-to-end", \
     datafile using 1:5 with linespoints lw 2 pt 9 lc rgb "#d62728" title "Postfix accepted", \
     datafile using 1:6 with linespoints lw 2 pt 8 dt 2 lc rgb "#d62728" title "Postfix end-to-end"
