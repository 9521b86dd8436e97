<?php
function fib(int $n): string {
    $a = '0';
    $b = '1';
    for ($i = 0; $i < $n; $i++) {
        [$a, $b] = [$b, bcadd($a, $b)];
    }
    return $a;
}
$n = (int) trim(fgets(STDIN) ?: '10');
foreach (range(0, $n) as $i) {
    printf("fib(%d) = %s\n", $i, fib($i));
}
$square = fn($x) => $x * $x;
echo $square(4), "\n";
while (true) {
    break;
}
?>
Done: <?= count(range(0, $n)) ?>
