"""ACR Tasks (issue 17), so far quick builds and runs: `scheduleRun` of a Docker build or
a task file (`az acr run --cmd`, `az acr run -f`: build, push and cmd steps), tasks run
on demand or by timers, the build context uploaded to a URL Dockyard serves in Azure
Blob's protocol, the run executed by buildah in the background work, its log streamed
back in the same protocol."""
