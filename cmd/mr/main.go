package main

import "github.com/mrengine/mr/mrcli"

func main() { mrcli.Main() }
