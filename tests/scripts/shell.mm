shell echo hello shell
shell printf a\nb
# stderr of a successful program is the error; its stdout is then not printed
shell sh -c "echo out; echo err >&2"
shell false
shell sh -c "exit 3"
shell nosuchprogram-xyz arg
background nosuchprogram-xyz
background true
shell true
shell
