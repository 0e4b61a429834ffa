# Write each command of the EXAMPLES section of an mdoc page to
# example<N>.sh: a literal line starting with "$ " begins a command,
# the lines after it in the same display continue it.
/^\.Sh EXAMPLES/ { ex = 1; next }
/^\.Sh / { ex = 0 }
ex && /^\.Bd -literal/ { lit = 1; f = ""; next }
ex && /^\.Ed/ { lit = 0; next }
ex && lit && /^\$ / { n++; f = "example" n ".sh"; sub(/^\$ /, "") }
ex && lit && f != "" { gsub(/\\e/, "\\"); print > f }
