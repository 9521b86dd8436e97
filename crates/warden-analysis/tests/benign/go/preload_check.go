// Command preload_check warns when the dynamic loader injects a library into this process and
// removes the loader's variables so that nothing started later inherits them.
package main

import (
	"fmt"
	"os"
	"strings"
)

func injected() map[string][]string {
	found := map[string][]string{}
	if preload := os.Getenv("LD_PRELOAD"); preload != "" {
		found["preload"] = strings.Split(preload, ":")
	}
	if audit, ok := os.LookupEnv("LD_AUDIT"); ok {
		found["audit"] = strings.Split(audit, ":")
	}
	return found
}

func main() {
	found := injected()
	for name, libraries := range found {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, strings.Join(libraries, ", "))
	}
	os.Unsetenv("LD_PRELOAD")
	os.Unsetenv("LD_AUDIT")
	if len(found) > 0 {
		os.Exit(1)
	}
}
