<?php
// Warns when the dynamic loader injected a library into this process, and removes the loader's
// variables so that nothing started later inherits them.
$found = [];
$preload = getenv('LD_PRELOAD');
if ($preload !== false && $preload !== '') {
    $found['preload'] = explode(':', $preload);
}
if (getenv("LD_AUDIT") !== false) {
    $found['audit'] = explode(':', (string) getenv("LD_AUDIT"));
}
foreach ($found as $name => $libraries) {
    fwrite(STDERR, $name . ': ' . implode(', ', $libraries) . "\n");
}
putenv('LD_PRELOAD');
putenv('LD_AUDIT');
exit(count($found) > 0 ? 1 : 0);
