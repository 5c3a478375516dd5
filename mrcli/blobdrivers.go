package mrcli

// The blob drivers the mr binary links. Shuffle files and dead letters of
// distributed workers live in shared object storage (mapreduce.Config.Blobs),
// and internal/blobs opens every scheme but file:// through gocloud's URL
// mux, which knows only the drivers the binary imports: without this an
// s3:// URL fails at run time with "no driver registered". A binary built
// on mrcli.Main gets the same drivers.
import _ "gocloud.dev/blob/s3blob"
