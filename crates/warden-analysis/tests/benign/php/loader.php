<?php
// A program split over files, loaded the way PHP projects do.
require_once __DIR__ . '/src/User.php';
require_once(__DIR__ . '/src/Repository.php');
include dirname(__FILE__) . '/lib/format.php';

$users = [new User('ada'), new User('grace')];
foreach ($users as $user) {
    echo $user->name, "\n";
}
