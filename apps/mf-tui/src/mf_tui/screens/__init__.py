"""The app's screens: Jobs, Monitor, Setup, Launch, Generate (and a confirmation dialog)."""
