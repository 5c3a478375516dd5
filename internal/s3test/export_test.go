package s3test

// Exported for the tests of package s3test_test.
var (
	Unavailable     = unavailable
	FindBin         = findBin
	BucketPrefixFor = bucketPrefixFor
	StartServer     = startServer
	ErrNoBin        = errNoBin
	InstallHint     = installHint
)
