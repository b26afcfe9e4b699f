package store

// LegacyDSN builds a database as carpipe v0.1 left it, for the tests of
// package store_test.
var LegacyDSN = legacyDSN
