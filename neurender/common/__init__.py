"""The common floor every room may use: user errors, argument helpers, previews. Imports nothing above it."""
