"""Software bills of materials: the packages installed in an image, read from its layers
on push, stored as SPDX and CycloneDX referrers of the image (issue 15)."""
