-- The operator's message while a security server is in maintenance mode
-- (shared parameters' inMaintenanceMode/message).
ALTER TABLE servers ADD COLUMN maintenance_message TEXT;
