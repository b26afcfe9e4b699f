// Command carpipe-gen writes the standard benchmark data set: car files of
// both types, deterministically.
package main

import "os"

func main() { os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr)) }
