// Package redact hides secrets in what mr prints: the credentials of URLs,
// and error messages that quote them. It holds what every kind of
// connection string shares; internal/pg adds libpq's key=value DSNs and the
// passwords that pgx resolves from the environment, and internal/blobs
// uses it for bucket URLs, whose drivers take keys and tokens in the query.
//
// Schematically:
//
//	URL(u, secret) → string           // u's password and secret query values masked
//	URLSecrets(u, secret) → []string  // those secrets, for Error
//	Error(err, secrets...) → error    // masked in err's message; errors.Is and As see through
//
// Every secret becomes [Mask], whoever masks it.
package redact
