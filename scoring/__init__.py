"""The nightly batch scoring job: chunks of customers, worker processes, atomic output, manifest and report."""
