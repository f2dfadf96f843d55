"""Mail adapters: how the connector's mails leave (connector.ports.MailSender)."""
