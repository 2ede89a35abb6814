-- Indexes on the columns that point at stored PDFs (issue 22): deleting an
-- organisation deletes its documents' and templates' PDFs, and each such delete
-- checks these columns (a foreign key, and "is this PDF still used?").

CREATE INDEX document_original_data ON document (original_data_id);
CREATE INDEX document_current_data ON document (current_data_id);
CREATE INDEX template_data ON template (data_id);
