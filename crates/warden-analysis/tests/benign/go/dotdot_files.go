package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	os.MkdirAll("data", 0o755)
	os.WriteFile(filepath.Join("data", "x.txt"), []byte("hi"), 0o644)
	b, err := os.ReadFile("./data/../data/x.txt")
	fmt.Println(string(b), err)
	_, err = os.Stat("/work/sub/file")
	fmt.Println(os.IsNotExist(err))
	entries, _ := os.ReadDir("data")
	for _, e := range entries {
		fmt.Println(e.Name())
	}
}
