-- wrk script: POST the AdmissionReview in $KPO_BENCH_BODY to the URL given on the command line.
local f = assert(io.open(os.getenv("KPO_BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- No `response` callback (it would make wrk parse every response in Lua); wrk counts HTTP >= 400
-- itself, so a failing server cannot pass for a fast one.
done = function(summary, latency, requests)
  io.write(string.format("bad-status: %d\n", summary.errors.status))
end
