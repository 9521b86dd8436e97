package main

import (
	"fmt"
	"time"
)

func main() {
	ticker := time.NewTicker(10 * time.Millisecond)
	done := time.After(55 * time.Millisecond)
	n := 0
	for {
		select {
		case <-ticker.C:
			n++
			go func(k int) { _ = k * k }(n)
		case <-done:
			fmt.Println("ticks", n)
			return
		}
	}
}
