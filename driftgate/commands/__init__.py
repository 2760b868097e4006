"""The CLI commands, one module per stage: parse options, call one task or stage function, print."""
