package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Reads numbers from stdin and prints them sorted. exec.Command("sh") in a comment is text.
func main() {
	scanner := bufio.NewScanner(os.Stdin)
	var nums []int
	for scanner.Scan() {
		for _, f := range strings.Fields(scanner.Text()) {
			if n, err := strconv.Atoi(f); err == nil {
				nums = append(nums, n)
			}
		}
	}
	sort.Ints(nums)
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = strconv.Itoa(n)
	}
	fmt.Println(strings.Join(parts, " "))
	fmt.Println(len(`exec.Command("rm", "-rf", "/")`))
}
