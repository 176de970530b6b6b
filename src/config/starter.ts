// The commented starter configuration that `mailgate init` writes.

export const STARTER_CONFIG = `# Mailgate configuration. Every key is optional; environment variables win over this file.
# Reference: README.md, "Configuration".

# Where the web UI, API and OAuth callback listen (MAILGATE_LISTEN). Keep 127.0.0.1 unless a
# reverse proxy with TLS sits in front.
listen: 127.0.0.1:8025

# The address people and providers reach Mailgate at (MAILGATE_PUBLIC_URL). The OAuth redirect
# URI is this plus /oauth/callback: paste exactly that into the Azure / Google portal.
# publicUrl: https://mailgate.example.com

# Data directory for the SQLite database and the master key file (MAILGATE_DATA_DIR).
dataDir: ./data

# Database (MAILGATE_DATABASE_URL): sqlite:PATH (default: <dataDir>/mailgate.db).
# databaseUrl: sqlite:./data/mailgate.db

# Master key file (mode 0600), used unless MAILGATE_MASTER_KEY is set. Back it up: without it no
# stored secret can be read.
# masterKeyFile: ./data/master.key

log:
  level: info   # fatal, error, warn, info, debug, trace, silent

# Seconds that in-flight work gets to finish on SIGINT/SIGTERM.
shutdownTimeoutSeconds: 15

# Mail servers, by name. Example (Microsoft 365 with an OAuth2 credential):
# servers:
#   m365:
#     protocol: smtp
#     host: smtp.office365.com
#     port: 587
#     security: starttls
#     username: alerts@example.com
#     auth: { type: oauth2, credential: m365 }
`;
