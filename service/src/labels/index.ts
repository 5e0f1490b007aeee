/**
 * What the rest of the service uses of labels/: the store (main.ts opens it), its routes (app.ts mounts them), and
 * the pieces of a labellable answer that /predict builds. Files outside labels/ import this file only, so the store's
 * insides (SQL, migrations, the pending writer) can change without touching a route; the labels CLI and the store's
 * tests, which work on the database itself, are the exceptions.
 */
export { Labels, type LabelsState } from './labels';
export { classChoices, createLabelRouter } from './routes';
export { correctionForm, heldOutPage } from './pages';
export { scalePhoto, type ReserveMemory } from './pending-writer';
