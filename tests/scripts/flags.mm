.csv
.json
.headers
.annotate
.sort
.compress
.record
.preprocess
.headers false
.headers
.headers true
.headers
.sort f
.sort
.sort t
.compress false
.compress false echo compressed
.compress
.compress true
.csv maybe
