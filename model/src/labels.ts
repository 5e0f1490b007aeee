import { z } from 'zod';

export const ClassLabelSchema = z.object({
  index: z.number().int().min(0),
  id: z.string().regex(/^[A-Za-z-]+$/, 'a label id is letters and dashes, e.g. Dairy-product'),
  name: z.string().min(1),
});
export type ClassLabel = z.infer<typeof ClassLabelSchema>;

/** Food-11's classes in its index order (file names `<classIndex>_<n>.jpg` rely on it), with its display names. */
export const FOOD11_LABELS: readonly ClassLabel[] = Object.freeze(
  [
    ['Bread', 'Bread'],
    ['Dairy-product', 'Dairy product'],
    ['Dessert', 'Dessert'],
    ['Egg', 'Egg'],
    ['Fried-food', 'Fried food'],
    ['Meat', 'Meat'],
    ['Noodles-Pasta', 'Noodles/Pasta'],
    ['Rice', 'Rice'],
    ['Seafood', 'Seafood'],
    ['Soup', 'Soup'],
    ['Vegetable-Fruit', 'Vegetable/Fruit'],
  ].map(([id, name], index) => Object.freeze({ index, id: id as string, name: name as string })),
);
