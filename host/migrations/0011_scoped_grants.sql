-- Capability grants say whom they are for (issue 18): a plugin's stored grants become a list
-- of grants, each for "everyone" or for a scope of users and roles. A grant stored before
-- applied to every user without saying so; it is kept for admins only, until an admin says
-- whom it is for (PUT /api/v1/plugins/{name}/grants with "scope" or "everyone": true).
UPDATE plugin_settings SET grants = '[]'
WHERE grants = '{"http":[],"secrets":[],"artifacts":false}';

UPDATE plugin_settings
SET grants = '[{"scope":{"users":[],"roles":["admin"]},' || substr(grants, 2) || ']'
WHERE grants LIKE '{%';
