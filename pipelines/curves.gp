# curves.gp — the training curves of a pipeline run (pipelines/plots.mk).
# Variables, given with gnuplot -e: dir (where curves.py wrote search.tsv,
# models.tsv and phases.gp), which (loss | auc | entropy | models), out (the
# picture), term (png | svg), title (the run's name).
if (term eq 'svg') {
    set terminal svg size 900,540 dynamic noenhanced font 'sans,12' background rgb 'white'
} else {
    set terminal pngcairo size 900,540 noenhanced font 'sans,11'
}
set output out
set datafile separator tab
set datafile missing 'NaN'
set key autotitle columnhead
set grid lc rgb 'gray85'
set border lc rgb 'gray30'
set xlabel 'epoch (warm-up, search and frozen epochs of the supernet, then fine-tuning)'
set xtics 1 nomirror out
set ytics nomirror out
set offsets 0.2, 0.2, graph 0.12, graph 0.03
set autoscale xfix
# twelve colours that stay apart, so that up to twelve lines differ
array colours[12] = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', \
                     '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000080', '#808000']
do for [i=1:12] { set linetype i lc rgb colours[i] lw 1.5 pt 7 ps 0.6 }
load dir.'/phases.gp'
data = dir.'/search.tsv'

if (which eq 'models') {
    set title sprintf('%s: validation AUC of every model per epoch of its training', title)
    set xlabel 'epoch of the model''s own training (the searched model: its fine-tuning)'
    set ylabel 'validation AUC (mean over tasks; a single-task model: its task)'
    set key outside right top vertical
    plot for [i=2:nmodels+1] dir.'/models.tsv' using 1:i with linespoints lt i-1 lw (i == 2 ? 3 : 1.5)
}
if (which eq 'loss') {
    @phases
    set title sprintf('%s: training loss of the search and of the searched model', title)
    set ylabel 'training loss (BCE, mean over tasks)'
    set key bottom left
    plot data using 1:2 with linespoints lt 1 lw 2 title 'train loss'
}
if (which eq 'auc') {
    @phases
    set title sprintf('%s: validation AUC per task during the search and fine-tuning', title)
    set ylabel 'validation AUC'
    set key outside right top vertical
    plot for [i=6:5+ntasks] data using 1:i with linespoints lt i-5, \
         data using 1:5 with lines lw 3 lc rgb 'black' title 'mean'
}
if (which eq 'entropy') {
    @phases_supernet
    set title sprintf('%s: progress of the architecture search', title)
    set xlabel 'epoch of the supernet (warm-up, search, frozen)'
    set xrange [0:nsupernet - 1]
    set ylabel 'mean entropy of softmax(alpha) (nats)'
    set y2label 'MixedOps still mixed'
    set y2tics nomirror out
    set y2range [0:*]
    set format y '%.6f'
    set key bottom left
    plot data using 1:3 with linespoints lt 4 lw 2 axes x1y1 title 'mean arch entropy', \
         data using 1:4 with steps lt 3 lw 2 axes x1y2 title 'MixedOps still mixed (right axis)'
}
