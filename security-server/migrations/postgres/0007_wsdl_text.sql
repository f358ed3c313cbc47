-- The WSDL a service description was read from, for the getWsdl metaservice.
ALTER TABLE service_descriptions ADD COLUMN wsdl BYTEA;
