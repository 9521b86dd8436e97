<?php
class Stack {
    private array $items = [];

    public function push($v): void { $this->items[] = $v; }

    public function pop() { return array_pop($this->items); }

    public function isEmpty(): bool { return empty($this->items); }
}

function balanced(string $s): bool {
    $pairs = [')' => '(', ']' => '[', '}' => '{'];
    $st = new Stack();
    foreach (str_split($s) as $c) {
        if (in_array($c, ['(', '[', '{'], true)) {
            $st->push($c);
        } elseif (isset($pairs[$c])) {
            if ($st->isEmpty() || $st->pop() !== $pairs[$c]) return false;
        }
    }
    return $st->isEmpty();
}

foreach (['(a[b])', '(]', '{{}}'] as $e) {
    echo $e, ' ', balanced($e) ? 'yes' : 'no', PHP_EOL;
}
$words = array_count_values(explode(' ', strtolower('The cat the hat')));
arsort($words);
print_r($words);
usort($e, fn($a, $b) => $a <=> $b);
