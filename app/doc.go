// Package app holds fieldflash's application services with no user interface: where state
// lives ($FIELDFLASH_HOME), the trust store of pinned roots, and the remembered newest
// trusted metadata and time that make verification resist rollback while offline. The CLI
// and the GUI are thin faces over it.
package app
