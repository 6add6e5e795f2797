# bench/aliccp-csv.awk — an Ali-CCP-shaped processed CSV for bench/scale.sh:
# click and purchase labels (4 % and 0.2 % positive), 23 token fields with
# about Ali-CCP's cardinalities (each a power of a uniform draw, so that low
# ids are frequent and the tail long), 8 float fields.  Random labels: for
# measuring amtl-prep on a CSV, not for training.
#
# Usage: awk -v rows=N -v seed=S -f bench/aliccp-csv.awk > out.csv
BEGIN {
    srand(seed);
    split("98 14 3 8 4 4 3 5 3 7000 300 4000 5000 1100 50000 200000 30000 20000 40 60 60 60 60",
          card, " ");
    h = "click:label,purchase:label";
    for (f = 1; f <= 23; f++)
        h = h ",f" f ":token";
    for (d = 1; d <= 8; d++)
        h = h ",x" d ":float";
    print h;
    for (i = 0; i < rows; i++) {
        c = rand() < 0.04;
        line = c "," (c && rand() < 0.05);
        for (f = 1; f <= 23; f++)
            line = line "," int(card[f] * rand() ^ 3);
        for (d = 1; d <= 8; d++)
            line = line "," sprintf("%.4f", rand());
        print line;
    }
}
