"""ACR Tasks (issue 17), so far quick builds and runs: `scheduleRun` of a Docker build or
a one-step `cmd` run, the build context uploaded to a URL Dockyard serves in Azure
Blob's protocol, the run executed by buildah in the background work, its log streamed
back in the same protocol."""
