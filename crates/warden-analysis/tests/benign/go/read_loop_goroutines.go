package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
)

func main() {
	r := bufio.NewReader(os.Stdin)
	var wg sync.WaitGroup
	results := make(chan int, 100)
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		wg.Add(1)
		go func(s string) { defer wg.Done(); results <- len(s) }(line)
	}
	wg.Wait()
	close(results)
	total := 0
	for n := range results {
		total += n
	}
	fmt.Println(total)
}
