"""The embedded default: real Alertmanager launcher, vendor fakes and the demo scenario."""
