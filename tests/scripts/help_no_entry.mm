# minimega answers the text, not an error
help nosuchcommand
