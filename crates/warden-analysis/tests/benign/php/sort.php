<?php
// Reads numbers from stdin and sorts them; system("rm -rf /") in a comment is text.
$input = stream_get_contents(STDIN);
$nums = array_map('intval', preg_split('/\s+/', trim($input), -1, PREG_SPLIT_NO_EMPTY));
function insertion_sort(array $a): array {
    for ($i = 1; $i < count($a); $i++) {
        $x = $a[$i];
        $j = $i - 1;
        while ($j >= 0 && $a[$j] > $x) {
            $a[$j + 1] = $a[$j];
            $j--;
        }
        $a[$j + 1] = $x;
    }
    return $a;
}
echo implode(' ', insertion_sort($nums)), "\n";
echo strlen('shell_exec("rm -rf /")'), "\n";
