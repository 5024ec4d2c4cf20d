"""The operator console: server-rendered pages on /console of the same HTTP API, in its own Lambda function,
signed in through Amazon Cognito. It reads and writes through the store modules the CLI uses."""
