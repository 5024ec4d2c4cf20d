"""The drill: Twilio's side of a call, played against a running webhook, and the checks that prove a number
fails over. The CLI's `drill` and the console's Drill button share it."""
