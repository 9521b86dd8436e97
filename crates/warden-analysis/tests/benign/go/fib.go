package main

import (
	"fmt"
	"math/big"
	"sync"
)

func fib(n int) *big.Int {
	a, b := big.NewInt(0), big.NewInt(1)
	for i := 0; i < n; i++ {
		a.Add(a, b)
		a, b = b, a
	}
	return a
}

func main() {
	var n int
	fmt.Scan(&n)
	var wg sync.WaitGroup
	results := make([]string, n+1)
	for i := 0; i <= n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = fib(i).String()
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		fmt.Printf("fib(%d) = %s\n", i, r)
	}
}
