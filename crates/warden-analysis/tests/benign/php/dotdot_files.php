<?php
@mkdir("data");
file_put_contents("data/x.json", json_encode(["a" => 1]));
var_dump(json_decode(file_get_contents("./data/../data/x.json"), true));
var_dump(file_exists("/work/sub/file"));
foreach (glob("data/*") as $f) echo basename($f), "\n";
$h = fopen("php://stdin", "r"); fclose($h);
echo file_get_contents("php://memory") === "" ? "mem\n" : "x\n";
