import type { ClassLabel } from '../src';
import { namedDishOf, type Sample } from './dataset';

/** How many dishes a class's training photos show, and how evenly. */
export interface DishBreadth {
  label: string;
  /** Training photos of the class. */
  photos: number;
  /** Of those, photos whose file names their dish (`<dish>__<id>`); the rest are not counted as dishes. */
  namedPhotos: number;
  dishes: number;
  /**
   * The inverse Simpson index, 1 / Σ pᵢ² over the dishes' shares of the named photos: as many dishes as the class
   * would have if its photos were spread evenly. Twelve dishes of which two hold 90 % of the photos count about 2.5.
   */
  effectiveDishes: number;
  largest?: { dish: string; photos: number };
}

/**
 * The dish breadth of each class's training photos. A network learns the dishes it sees, not the class, so a class
 * whose photos are two dishes is one a user's third dish of it will miss (issue 23: Rice was paella and chicken rice,
 * and fried rice and risotto went to Noodles/Pasta). This says before training where more dishes are what is missing.
 */
export function dishBreadth(samples: Sample[], labels: readonly ClassLabel[]): DishBreadth[] {
  return labels.map((label, index) => {
    const training = samples.filter((s) => s.split === 'train' && s.label === index);
    const perDish = new Map<string, number>();
    for (const sample of training) {
      // A name without `__` is a photo, not a dish: counting each as a dish of its own would inflate the breadth.
      const dish = namedDishOf(sample.path);
      if (dish !== undefined) perDish.set(dish, (perDish.get(dish) ?? 0) + 1);
    }
    const namedPhotos = [...perDish.values()].reduce((a, b) => a + b, 0);
    const sumOfSquares = [...perDish.values()].reduce((a, n) => a + (n / namedPhotos) ** 2, 0);
    const largest = [...perDish].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
    return {
      label: label.name,
      photos: training.length,
      namedPhotos,
      dishes: perDish.size,
      effectiveDishes: namedPhotos > 0 ? 1 / sumOfSquares : 0,
      ...(largest ? { largest: { dish: largest[0], photos: largest[1] } } : {}),
    };
  });
}

export function dishBreadthToMarkdown(rows: DishBreadth[]): string {
  return [
    '### Dishes trained on, per class',
    '',
    'Effective dishes: as many dishes as the class would have with its photos spread evenly (1 / Σ share²). ' +
      'A class with few is one whose unseen dishes the model will miss.',
    '',
    '| class | training photos | photos naming a dish | dishes | effective dishes | largest dish (photos) |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.photos} | ${r.namedPhotos} | ${r.dishes} | ${r.effectiveDishes.toFixed(1)} | ` +
        `${r.largest ? `${r.largest.dish} (${r.largest.photos})` : '—'} |`,
    ),
    '',
  ].join('\n');
}
