package main

import mr "github.com/mrengine/mr"

func main() { mr.Main() }
