package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	os.MkdirAll("testdata", 0o755)
	os.WriteFile("testdata/in.txt", []byte("go"), 0o644)
	b, _ := os.ReadFile(filepath.Join("testdata", "..", "testdata", "in.txt"))
	fmt.Println(string(b))
	b, _ = os.ReadFile("testdata/../testdata/in.txt")
	fmt.Println(string(b))
}
